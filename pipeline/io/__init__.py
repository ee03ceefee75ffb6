"""IO connectors: article files in, Avro files out (Kafka in the modules beside)."""
