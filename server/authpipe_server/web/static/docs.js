// Starts Swagger UI on /docs. A file rather than an inline script, so the page's CSP keeps
// script-src 'self'. validatorUrl: null: the schema is never sent to validator.swagger.io.
(function () {
  var element = document.getElementById("swagger-ui");
  if (!element || typeof SwaggerUIBundle !== "function") return;
  SwaggerUIBundle({
    url: element.dataset.openapiUrl,
    domNode: element,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
  });
})();
