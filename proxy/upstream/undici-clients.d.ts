// Types for the undici client module the proxy loads directly (see pools.ts): the package's
// index also loads fetch, WebSocket, caches and mocks, ~10 MB of RSS in every worker for code a
// proxy never runs. undici 7 has no "exports" map, so these paths are public to Node.
declare module "undici/lib/dispatcher/pool.js" {
  import { Pool } from "undici";
  export = Pool;
}
