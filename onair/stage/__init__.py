"""The stage: call-ins, screening, callers and co-hosts on air."""
