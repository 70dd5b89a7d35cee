"""Protocol adapters: what a car sends over one protocol, as protocol-v1 records for the ingest service.

Each hands its records to :class:`microfleet.services.ingest.IngestService`. One module per protocol,
all the same shape: receive, decode, name the source, ingest, answer.
"""
