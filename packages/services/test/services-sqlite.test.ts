import { serviceSuite } from './suite.ts';

serviceSuite('sqlite');
