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
