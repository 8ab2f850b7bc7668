import { directorySuite } from './directory-suite.ts';

// Fails (does not skip) when PostgreSQL is missing: .ci/run installs it from apt.
directorySuite('pg');
