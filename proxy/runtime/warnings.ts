// Node prints an ExperimentalWarning when @extism/extism loads node:wasi, in every serving
// process and plugin worker: noise in a JSON log that says nothing to act on (the WASI surface
// plugins get is empty: no preopens, no environment). Every other warning is printed as before.
const listeners = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (w: Error) => {
  if (w.name === "ExperimentalWarning" && /WASI/.test(w.message)) return;
  for (const l of listeners) l(w);
});
