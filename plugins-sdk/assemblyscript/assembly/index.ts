// RAUTA plugin SDK for AssemblyScript, ABI v1 (plugins-sdk/ABI.md). Import it by relative path:
//   import { run, Request, Decision } from "<path to>/plugins-sdk/assemblyscript/assembly/index";
// and build with hack/plugins/build.ts (or the flags in ../README.md).
export { Request, Pair, Decision, Modify, Writer, Action, Phase, ABI_VERSION, run, config, Handler, Setup } from "./abi";
export { Json, JsonKind, parseJson, parseJsonString, jsonError, quote, numberText } from "./json";
export { log, LogLevel, nowMs, verifySignature, Alg, rateTake, cacheGet, cacheSet, cacheGetBytes, cacheSetBytes, headerBytes, rautaAbort } from "./host";
export { base64Decode, base64Encode, base64UrlDecode, base64UrlEncode, base64DecodeRaw } from "./base64";
export { percentEncode, percentDecode, queryParam, queryWith, queryWithout } from "./url";
export { asciiLower, asciiUpper, asciiEqualsIgnoreCase, trimOws, isHeaderValueSafe, isToken } from "./text";
