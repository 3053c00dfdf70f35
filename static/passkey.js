// The passkey buttons (WebAuthn). Served as /static/passkey.js: no inline script, the CSP stays
// strict. Pages work without it: the button stays hidden and the code form remains.
//
//   <button id="use-passkey" data-req="…" data-csrf="…" data-begin="URL" data-finish="URL">
//       sign in with a passkey: passwordless (/login) or as the second step (/login/factor)
//   <button id="add-passkey" data-csrf="…" [data-name-input="ID"]>   register a passkey (account page)
//
// The server speaks webauthn-rs JSON: binary fields as base64url strings; the browser's API wants
// ArrayBuffers. The conversions below are the only translation.
(function () {
  "use strict";

  function toBuffer(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    if (!buffer) return undefined;
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) throw new Error(json.error_description || "the server refused (" + res.status + ")");
        return json;
      });
    });
  }

  function creationOptions(json) {
    var pk = json.publicKey;
    pk.challenge = toBuffer(pk.challenge);
    pk.user.id = toBuffer(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(json) {
    var pk = json.publicKey;
    pk.challenge = toBuffer(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: pk };
  }

  // A credential as JSON for the server: the parts every credential has, and `response`.
  function credentialJson(cred, response) {
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: response,
    };
  }

  function registration(cred) {
    return credentialJson(cred, {
      attestationObject: toBase64url(cred.response.attestationObject),
      clientDataJSON: toBase64url(cred.response.clientDataJSON),
      transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
    });
  }

  function assertion(cred) {
    return credentialJson(cred, {
      authenticatorData: toBase64url(cred.response.authenticatorData),
      clientDataJSON: toBase64url(cred.response.clientDataJSON),
      signature: toBase64url(cred.response.signature),
      userHandle: toBase64url(cred.response.userHandle),
    });
  }

  function say(button, message) {
    var out = document.getElementById("passkey-status");
    if (!out) {
      out = document.createElement("p");
      out.id = "passkey-status";
      out.setAttribute("role", "alert");
      out.className = "error";
      button.parentNode.insertBefore(out, button.nextSibling);
    }
    out.textContent = message;
  }

  function wire(button, run) {
    if (!button) return;
    if (!window.PublicKeyCredential || !navigator.credentials) return; // stays hidden
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      run().catch(function (e) {
        say(button, "Passkey failed: " + (e && e.message ? e.message : e));
      }).then(function () { button.disabled = false; });
    });
  }

  var use = document.getElementById("use-passkey");
  wire(use, function () {
    var req = use.dataset.req, csrf = use.dataset.csrf;
    return post(use.dataset.begin + "?req=" + encodeURIComponent(req), csrf, { csrf: csrf })
      .then(function (json) { return navigator.credentials.get(requestOptions(json)); })
      .then(function (cred) { return post(use.dataset.finish, csrf, { req: req, csrf: csrf, credential: assertion(cred) }); })
      .then(function (json) { window.location.assign(json.redirect); });
  });

  var add = document.getElementById("add-passkey");
  wire(add, function () {
    var csrf = add.dataset.csrf;
    var nameInput = add.dataset.nameInput ? document.getElementById(add.dataset.nameInput) : null;
    var ceremony;
    return post("/account/passkeys/begin", csrf, { csrf: csrf })
      .then(function (json) { ceremony = json.ceremony; return navigator.credentials.create(creationOptions(json)); })
      .then(function (cred) {
        return post("/account/passkeys/finish", csrf, { csrf: csrf, ceremony: ceremony, name: nameInput ? nameInput.value : null, credential: registration(cred) });
      })
      .then(function () { window.location.reload(); });
  });
})();
