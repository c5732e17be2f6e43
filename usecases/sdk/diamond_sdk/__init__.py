"""Diamond's Python SDK: turns a use case folder into a streaming job.

This package hides Kafka, Avro and offsets from data scientists. The modules here so far
are the foundation the runner stands on: the shared Avro contracts (``contracts``), the
Confluent wire format (``wire``) and a schema registry client (``registry``).
"""
