// Loaded by mocha before any spec (.mocharc.json "require"). Pepr decides at import time which
// bindings to register; "build" registers admission and watch bindings alike, so whichever spec
// imports pepr first, the capabilities test sees them all. Pepr's logs are kept to warnings.
process.env.PEPR_MODE ??= "build";
process.env.LOG_LEVEL ??= "warn";
