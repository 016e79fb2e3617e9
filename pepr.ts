import { PeprModule } from "pepr";
// cfg carries the module's pepr settings (uuid, onError, webhook timeout) from package.json.
import cfg from "./package.json" with { type: "json" };

// Capabilities are registered here as the control plane lands (see ARCHITECTURE.md).
new PeprModule(cfg, []);
