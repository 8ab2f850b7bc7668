import { invitationBlobsSuite } from './invitation-blobs-suite.ts';

// Fails (does not skip) when PostgreSQL is missing, as directory-pg.test.ts.
invitationBlobsSuite('pg');
