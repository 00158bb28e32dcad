"""The dashboard's pages, one module per area; `dashboard.routes` includes their routers."""
