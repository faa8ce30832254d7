// pgfleet API docs: starts Swagger UI (swagger-ui-bundle.js, loaded just before) on the page's
// #swagger-ui element. A file of its own rather than an inline script: the page's
// Content-Security-Policy allows scripts from this origin only.
(function () {
  'use strict';
  var el = document.getElementById('swagger-ui');
  var ui = SwaggerUIBundle({
    url: el.getAttribute('data-spec-url') || '/v1/doc',
    domNode: el,
    deepLinking: true,
    // Keep what was entered under Authorize across reloads (in this browser's localStorage).
    persistAuthorization: true,
    displayRequestDuration: true,
    docExpansion: 'list',
    filter: true,
    // No call to an external validator: the machines are offline.
    validatorUrl: null,
    // The OAuth flow comes back to this page's origin; register this URI with the app.
    oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect.html',
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'BaseLayout',
  });
  ui.initOAuth({
    appName: 'pgfleet API docs',
    scopes: ['workspace:admin', 'offline_access'],
    // pgfleet requires PKCE (S256) for the authorization code flow.
    usePkceWithAuthorizationCodeGrant: true,
  });
  window.ui = ui;
})();
