// The API docs: Swagger UI from local files (the Swagger UI 5 files fastapi-offline ships), no CDN and no inline script.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
