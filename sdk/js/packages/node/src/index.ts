export { Authpipe, SDK_VERSION } from './client.js';
export { AuthpipeError, ConnectionNotFound, ConnectionRevoked } from './errors.js';
export type { AuthpipeErrorOptions } from './errors.js';
export type {
  AuthpipeOptions,
  Connection,
  ConnectionList,
  ConnectionPage,
  ConnectionStatus,
  ConnectSession,
  CreateConnectSessionParams,
  Credential,
  FetchInit,
  FetchLike,
  GetCredentialParams,
  ListConnectionsParams,
  ResponseLike,
} from './types.js';
