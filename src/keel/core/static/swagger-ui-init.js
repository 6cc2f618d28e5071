// Starts Swagger UI with the settings its page carries in #swagger-ui's data-config (JSON).
// A file, not an inline script: the docs pages' CSP allows scripts from this origin only.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  const config = JSON.parse(root.dataset.config);
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  window.ui = SwaggerUIBundle(config);
})();
