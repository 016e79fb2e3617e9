// The config contract's version, on its own so that code which only hashes or checks configs
// (serving workers) need not load the zod schema.
export const CONFIG_API_VERSION = "rauta.io/v1alpha1";
