// The sign-in URL of a route (a SecurityPolicy's signIn, ingress-nginx's auth-signin): where a
// 401 of the route's ExternalAuth filter sends the client. A template with the nginx variables
// ingress-nginx users already write, checked once (the compiler's messages and the proxy agree).
export const SIGN_IN_VARIABLES = ["scheme", "host", "request_uri", "escaped_request_uri"] as const;
type Variable = (typeof SIGN_IN_VARIABLES)[number];

export interface SignInRequest {
  scheme: string;
  host: string;
  /** path and query as the client sent them */
  requestUri: string;
}

const VARIABLE = /\$(\w+)/g;

/** Why a template cannot be used, or null. */
export function signInProblem(url: string): string | null {
  for (const m of url.matchAll(VARIABLE))
    if (!(SIGN_IN_VARIABLES as readonly string[]).includes(m[1]!))
      return `${JSON.stringify(url)}: $${m[1]} is not one of ${SIGN_IN_VARIABLES.map(v => `$${v}`).join(", ")}`;
  const probe = expandSignIn(url, { scheme: "https", host: "h.example", requestUri: "/" });
  if (probe.startsWith("/") && !probe.startsWith("//")) return null;
  let u: URL;
  try {
    u = new URL(probe);
  } catch {
    return `${JSON.stringify(url)}: not an absolute http(s) URL or a path starting with /`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    return `${JSON.stringify(url)}: not an absolute http(s) URL or a path starting with /`;
  return null;
}

export function expandSignIn(url: string, r: SignInRequest): string {
  const value = (v: Variable): string => {
    switch (v) {
      case "scheme":
        return r.scheme;
      case "host":
        return r.host;
      case "request_uri":
        return r.requestUri;
      case "escaped_request_uri":
        return encodeURIComponent(r.requestUri);
    }
  };
  return url.replace(VARIABLE, (all, name: string) =>
    (SIGN_IN_VARIABLES as readonly string[]).includes(name) ? value(name as Variable) : all,
  );
}
