// ticketsync console: the little behaviour pages have beyond links and forms.
// - [data-copy="ID"] buttons copy the text of #ID (Clipboard API, else select + execCommand).
// - buttons with [data-busy="text"] show that text and disable while their form is sent.
// - [data-show-if] fields hide while the choice they depend on does not need them.
(function () {
  "use strict";

  function copyText(text, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectFallback(text, done); });
    } else {
      selectFallback(text, done);
    }
  }

  function selectFallback(text, done) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { document.body.removeChild(area); }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (source) copyText(source.textContent.trim(), button);
  });

  // [data-show-if="NAME:v1,v2"]: shown only while the control NAME has one of the values
  // (a checkbox's values are "on" and "off"). Without JavaScript every field stays visible.
  function applyShowIf() {
    document.querySelectorAll("[data-show-if]").forEach(function (el) {
      var rule = el.getAttribute("data-show-if").split(":");
      var control = document.querySelector("[name='" + rule[0] + "']");
      if (!control) return;
      var value = control.type === "checkbox" ? (control.checked ? "on" : "off") : control.value;
      el.hidden = rule[1].split(",").indexOf(value) < 0;
    });
  }
  document.addEventListener("change", applyShowIf);
  document.addEventListener("DOMContentLoaded", applyShowIf);
  document.addEventListener("htmx:afterSwap", applyShowIf);

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.hasAttribute("data-busy")) {
      button.textContent = button.getAttribute("data-busy");
      setTimeout(function () { button.disabled = true; }, 0);
    }
  });
})();
