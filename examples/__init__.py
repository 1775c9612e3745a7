"""Sample SaaS applications that Tenant Lifecycle exports and purges (see each package's README)."""
