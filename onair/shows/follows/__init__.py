"""Following hosts: follows, the notifications they bring (a list and a live stream) and each
user's private calendar of the shows coming up."""
