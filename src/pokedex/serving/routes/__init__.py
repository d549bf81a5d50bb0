"""HTTP routes, one module (router) per resource."""
