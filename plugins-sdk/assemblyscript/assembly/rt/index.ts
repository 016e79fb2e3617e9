// The runtime entry asc loads with `--runtime <this file without .ts>`: importing, not
// re-exporting, keeps the allocator's functions out of the module's exports.
import "./arena";
