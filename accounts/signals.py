"""What the accounts app announces to the apps above it, which connect from their AppConfig.ready."""

from django.dispatch import Signal

# A token was revoked (logout): arguments customer_id, token_id.
token_revoked = Signal()
# A customer was deactivated, after the transaction commits: arguments customer_id, reason.
customer_deactivated = Signal()
