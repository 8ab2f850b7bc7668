export {
  DirectoryClient,
  DirectoryError,
  directoryIdentity,
  parseNameAddress,
  type DirectoryErrorCode,
  type DirectoryEventMap,
  type DirectoryStatus,
  type DirectoryTokenSource,
  type KeyAlert,
  type OpenDirectoryOptions,
  type SplitView,
} from './directory.ts';
