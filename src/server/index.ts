export { REDACTED, redactText, redactUrl } from "../internal/redact.js";
export {
  controlMigrationSets,
  isPostgresUrl,
  migrateControlDatabase,
  openControlDatabase,
} from "./control-database.js";
export type { ShutdownReport, StoreroomServer } from "./create-server.js";
export { createServer } from "./create-server.js";
export type { ErrorBody } from "./error-reply.js";
export { errorReply, HttpError } from "./error-reply.js";
export { GatewayAuthenticator, gatewaySecretHeader, stripIdentityHeaders } from "./gateway-authenticator.js";
export type { Authenticator, RequestIdentity } from "./identity.js";
export { canAdministerOrg, isAdmin, isOperator, Role } from "./identity.js";
export { acceptIdentity, reservedOrgIds, tenantKeyOf } from "./identity-policy.js";
export type { MetricsHistoryOptions, MetricsSample } from "./metrics-history.js";
export { MetricsHistory } from "./metrics-history.js";
export type { OrgBusPeer } from "./org-buses.js";
export type { PeerNameOwner } from "./peer-names.js";
export type {
  ResolvedServerConfig,
  ResolvedServerOptions,
  ServerClusterOptions,
  ServerConfig,
  ServerOptions,
} from "./server-config.js";
export { defaultPort, resolveServerConfig, resolveServerOptions } from "./server-config.js";
export type { GaugeReadings, MetricSources } from "./server-metrics.js";
export { ServerMetrics } from "./server-metrics.js";
export { TokenAuthenticator } from "./token-authenticator.js";
export type { StoredToken, TokenRecord } from "./token-file.js";
export type { GeneratedToken, NewToken, NewTokenOptions, TokenStoreOptions } from "./token-store.js";
export { TokenStore } from "./token-store.js";
