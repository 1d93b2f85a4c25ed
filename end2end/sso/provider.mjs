// A real OpenID provider (npm `oidc-provider`, a certified implementation) standing in for a
// Cognito user pool's hosted UI in the end-to-end tests: no emulator serves the hosted UI.
// It answers on Cognito's paths (/oauth2/authorize, /oauth2/token) and issues RS256 ID tokens
// with Cognito's claims (`token_use`, `cognito:groups`), so the toolkit runs the same code as
// against a pool.
//
//   node sso/provider.mjs <port> <toolkit base URL>    prints "ready <issuer>" when listening
//
// Accounts: any login is accepted (the provider's development login form); the email is the login
// and the groups come from its first part: exec… -> executive, manager… -> sales_manager,
// nogroup… -> none, anything else -> rep. The issuer is http://localhost:<port> — a different
// *site* from the toolkit on 127.0.0.1, so the browser treats the redirects as cross-site, as
// with a real pool.
import Provider from "oidc-provider";

const [port, toolkit] = process.argv.slice(2);
if (!port || !toolkit) {
  console.error("usage: node sso/provider.mjs <port> <toolkit base URL>");
  process.exit(2);
}
const issuer = `http://localhost:${port}`;

function groupsFor(login) {
  if (login.startsWith("exec")) return ["executive"];
  if (login.startsWith("manager")) return ["sales_manager"];
  if (login.startsWith("nogroup")) return [];
  return ["rep"];
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "nexus-e2e-client",
      // A public client: PKCE is then required by the provider (as Cognito does for such clients).
      token_endpoint_auth_method: "none",
      redirect_uris: [`${toolkit}/auth/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  routes: { authorization: "/oauth2/authorize", token: "/oauth2/token", jwks: "/.well-known/jwks.json" },
  scopes: ["openid", "email", "profile"],
  claims: {
    openid: ["sub", "token_use", "cognito:groups", "cognito:username"],
    email: ["email", "email_verified"],
  },
  // Grant the toolkit's scopes without a consent screen (a first-party client, as in Cognito).
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile");
    grant.addOIDCClaims(["token_use", "cognito:groups", "cognito:username", "email", "email_verified"]);
    await grant.save();
    return grant;
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: `sso-${id}`,
          token_use: "id",
          "cognito:groups": groupsFor(id),
          "cognito:username": id.split("@")[0],
          email: id,
          email_verified: true,
        };
      },
    };
  },
  // Cognito puts the user's claims in the ID token itself (not only behind /userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60 },
});
// Every loopback address: the browser may resolve localhost to ::1 or 127.0.0.1.
provider.listen(Number(port), () => {
  console.log(`ready ${issuer}`);
});
