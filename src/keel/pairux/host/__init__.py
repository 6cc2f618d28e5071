"""The host agent: what runs on the shared machine. It captures and encodes the screen once for
every viewer, and decides, locally, who may control it: grants, arbitration between several
controllers and the host's own hands, injection, the audit log."""
