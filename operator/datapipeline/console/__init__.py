"""The web console (docs/console.md): `datapipeline console` serves it; nothing here is imported by the operator."""
