"""Platform moderation: the community rules, reports, moderators' actions and the audit log."""
