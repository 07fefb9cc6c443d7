"""Pipeline stage entry points and the CPSign runtime."""
