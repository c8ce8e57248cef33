// Keycard pages: small progressive enhancements. Every page works without
// this script; the server checks everything again.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Buttons behind a typed confirmation stay disabled until the text
  // matches (ignoring case and extra spaces).
  document.querySelectorAll("input[data-confirm]").forEach(function (input) {
    var button = input.form && input.form.querySelector("button[type=submit]");
    if (!button) {
      return;
    }
    var want = input.getAttribute("data-confirm").toLowerCase();
    var check = function () {
      var typed = input.value.trim().split(/\s+/).join(" ").toLowerCase();
      button.disabled = typed !== want;
    };
    input.addEventListener("input", check);
    check();
  });
  // A form_post authorization response goes to the application at once.
  var post = document.querySelector("form[data-autosubmit]");
  if (post) {
    post.submit();
    return;
  }
  // After a refused form, put the keyboard on the first field in error.
  var invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) {
    invalid.focus();
  }
});

// Passkeys (WebAuthn): the account page's "Add a passkey" and the sign-in
// page's passkey sign-in, with conditional mediation (the browser offers
// its passkeys in the username field's autofill). The options come from
// the server as JSON (base64url for binary values) and the answer goes
// back as JSON (PublicKeyCredential.toJSON's form); the server checks
// everything.
var b64u = {
  decode: function (s) {
    var bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  },
  encode: function (buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
};

function passkeyDescriptors(list) {
  return (list || []).map(function (c) {
    var d = { type: c.type, id: b64u.decode(c.id) };
    if (c.transports) {
      d.transports = c.transports;
    }
    return d;
  });
}

function creationOptions(o) {
  var pk = Object.assign({}, o.publicKey);
  pk.challenge = b64u.decode(pk.challenge);
  pk.user = Object.assign({}, pk.user, { id: b64u.decode(pk.user.id) });
  pk.excludeCredentials = passkeyDescriptors(pk.excludeCredentials);
  return pk;
}

function requestOptions(o) {
  var pk = Object.assign({}, o.publicKey);
  pk.challenge = b64u.decode(pk.challenge);
  pk.allowCredentials = passkeyDescriptors(pk.allowCredentials);
  return pk;
}

function credentialJSON(cred) {
  if (typeof cred.toJSON === "function") {
    return cred.toJSON();
  }
  var r = cred.response, out = {
    id: cred.id, rawId: b64u.encode(cred.rawId), type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: { clientDataJSON: b64u.encode(r.clientDataJSON) }
  };
  if (r.attestationObject) {
    out.response.attestationObject = b64u.encode(r.attestationObject);
    out.response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    out.response.authenticatorData = b64u.encode(r.authenticatorData);
    out.response.signature = b64u.encode(r.signature);
    if (r.userHandle) {
      out.response.userHandle = b64u.encode(r.userHandle);
    }
  }
  return out;
}

function postJSON(url, csrf, body) {
  return fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {})
  }).then(function (res) {
    return res.json().catch(function () { return {}; }).then(function (data) {
      if (!res.ok) {
        var err = new Error(data.error || "The request failed.");
        err.data = data;
        throw err;
      }
      return data;
    });
  });
}

function showError(el, message) {
  el.textContent = message;
  el.hidden = false;
}

function setUpPasskeyRegistration(form) {
  var error = document.getElementById("passkey-add-error");
  var button = document.getElementById("passkey-add-button");
  var csrf = form.getAttribute("data-csrf");
  form.hidden = false;
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    error.hidden = true;
    button.disabled = true;
    var name = form.querySelector("[name=name]").value;
    postJSON("/account/passkeys/options", csrf).then(function (begun) {
      return navigator.credentials.create({ publicKey: creationOptions(begun.options) }).then(function (cred) {
        return postJSON("/account/passkeys", csrf, { id: begun.id, name: name, credential: credentialJSON(cred) });
      });
    }).then(function () {
      location.assign("/account?done=passkeyadded#passkeys-h");
    }).catch(function (err) {
      button.disabled = false;
      if (err.data && err.data.reauth) {
        location.assign(err.data.reauth);
        return;
      }
      showError(error, err.name === "NotAllowedError" ? "No passkey was added." :
        err.name === "InvalidStateError" ? "This device already has a passkey for your account." : err.message);
    });
  });
}

function setUpPasskeySignIn(form) {
  var box = document.getElementById("passkey-signin");
  var error = document.getElementById("passkey-error");
  var csrf = form.querySelector("[name=csrf_token]").value;
  var next = form.querySelector("[name=next]").value;
  var pending = null; // the AbortController of the conditional request
  box.hidden = false;

  function signIn(mediation) {
    var abort = new AbortController();
    return postJSON("/signin/passkey/options", csrf).then(function (begun) {
      var req = { publicKey: requestOptions(begun.options), signal: abort.signal };
      if (mediation) {
        req.mediation = mediation;
      }
      if (mediation === "conditional") {
        pending = abort;
        form.setAttribute("data-passkey-conditional", "waiting");
      }
      return navigator.credentials.get(req);
    }).then(function (cred) {
      return postJSON("/signin/passkey", csrf, { next: next, credential: credentialJSON(cred) });
    }).then(function (done) {
      location.assign(done.redirect);
    });
  }

  function conditional() {
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (ok) {
        signIn("conditional").catch(function (err) {
          if (err.name !== "AbortError") {
            showError(error, err.name === "NotAllowedError" ? "No passkey was used." : err.message);
          }
        });
      }
    });
  }

  document.getElementById("passkey-button").addEventListener("click", function () {
    error.hidden = true;
    if (pending) {
      pending.abort();
      pending = null;
    }
    signIn("").catch(function (err) {
      showError(error, err.name === "NotAllowedError" ? "No passkey was used." : err.message);
    });
  });
  conditional();
}

function setUpMFAPasskey(box) {
  var button = document.getElementById("mfa-passkey-button");
  var error = document.getElementById("mfa-passkey-error");
  var csrf = box.getAttribute("data-csrf"), next = box.getAttribute("data-next");
  button.hidden = false;
  button.addEventListener("click", function () {
    error.hidden = true;
    button.disabled = true;
    postJSON("/signin/mfa/passkey/options", csrf).then(function (begun) {
      return navigator.credentials.get({ publicKey: requestOptions(begun.options) }).then(function (cred) {
        return postJSON("/signin/mfa/passkey", csrf, { id: begun.id, next: next, credential: credentialJSON(cred) });
      });
    }).then(function (done) {
      location.assign(done.redirect);
    }).catch(function (err) {
      button.disabled = false;
      if (err.data && err.data.redirect) {
        location.assign(err.data.redirect);
        return;
      }
      showError(error, err.name === "NotAllowedError" ? "No passkey was used." : err.message);
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  var mfa = document.getElementById("mfa-passkey");
  if (mfa) {
    setUpMFAPasskey(mfa);
  }
  var add = document.getElementById("passkey-add");
  if (add) {
    setUpPasskeyRegistration(add);
  }
  var signin = document.querySelector("form[data-passkey]");
  if (signin) {
    setUpPasskeySignIn(signin);
  }
});
