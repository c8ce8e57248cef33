// The demo weather page, a single-page app on @keycard/browser: it signs
// in with the authorization code flow (PKCE, DPoP-bound tokens), reads
// the forecast from the weather service through the gateway with
// kc.fetch, and follows the session: signed out in another tab or at the
// auth server, it says so.
import { KeycardClient } from "./keycard-browser.js";

const config = JSON.parse(document.getElementById("weather-config").textContent);
const $ = (id) => document.getElementById(id);
const status = (s) => { $("weather-status").textContent = s; };
const here = location.origin + location.pathname;

function signedOut(why) {
  status(why);
  for (const id of ["weather-who", "weather-facts", "weather-forecast"]) $(id).hidden = true;
  $("weather-signed-out").hidden = false;
  $("forecast").replaceChildren();
}

async function show(kc, claims) {
  $("weather-signed-out").hidden = true;
  $("weather-user").textContent = $("weather-username").textContent = claims.preferred_username ?? claims.sub;
  $("weather-subject").textContent = claims.sub;
  $("weather-roles").textContent = claims.roles?.length ? claims.roles.join(", ") : "none";
  $("weather-who").hidden = $("weather-facts").hidden = false;
  status("Reading the forecast…");
  const rows = [];
  for (const city of config.cities) {
    const res = await kc.fetch(`/weather/${encodeURIComponent(city)}`);
    if (!res.ok) {
      status(res.status === 403 ? "Your account may not read the weather." : `The weather service answered ${res.status}.`);
      return;
    }
    const f = await res.json();
    const tr = document.createElement("tr");
    for (const v of [f.city, `${f.temperature_c} °C`, f.conditions]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    rows.push(tr);
  }
  $("forecast").replaceChildren(...rows);
  $("weather-forecast").hidden = false;
  status("");
}

try {
  const kc = await KeycardClient.create({
    issuer: config.issuer, clientId: config.clientId, redirectUri: here,
    postLogoutRedirectUri: here + "?signed-out", scope: config.scope,
  });
  kc.on("signedout", (e) => signedOut(e.reason === "invalid_grant"
    ? "Your session ended at the auth server (signed out elsewhere, or revoked)."
    : "You signed out (in this tab or another one)."));
  let shown = false;
  kc.on("tokens", (e) => { if (!shown && e.claims) { shown = true; show(kc, e.claims); } });
  $("weather-signin").addEventListener("click", () => kc.signIn({ returnTo: location.pathname }));
  $("weather-signout").addEventListener("click", () => kc.signOut());
  const claims = await kc.start();
  if (claims) {
    if (!shown) { shown = true; await show(kc, claims); }
  } else if (location.search === "?signed-out") {
    signedOut("You are signed out.");
  } else {
    await kc.signIn({ returnTo: location.pathname });
  }
} catch (e) {
  signedOut(`Something went wrong: ${e.message}`);
}
