import { directorySuite } from './directory-suite.ts';

directorySuite('sqlite');
