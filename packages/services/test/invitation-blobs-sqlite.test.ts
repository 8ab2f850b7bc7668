import { invitationBlobsSuite } from './invitation-blobs-suite.ts';

invitationBlobsSuite('sqlite');
