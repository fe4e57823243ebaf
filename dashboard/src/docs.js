// The /docs page: Swagger UI over the API's own /openapi.json.
// The ES bundle is the one that carries its dependencies and suits a
// bundler; the standalone preset (top bar, URL box) is left out because the
// page only ever shows this API's description.

import SwaggerUI from 'swagger-ui-dist/swagger-ui-es-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

SwaggerUI({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
});
