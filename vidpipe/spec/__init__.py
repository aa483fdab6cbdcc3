"""What the user wrote, resolved: YAML with source positions (`yamlsource`), JSON Schemas
(`schema`), `vidpipe.yaml` (`config`) and job files with their matrices (`jobs`)."""
