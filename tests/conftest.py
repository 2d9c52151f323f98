pytest_plugins = ["tests.harness", "tests.schema_registry_server"]
