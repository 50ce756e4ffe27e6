"""Access: who is asking and what they may do. Identities in, a :class:`Principal` and a yes or no
out; nothing here reads a record or writes the audit log (the service does both).

- :mod:`~retrieval.access.roles`: roles, actions and the table between them (:func:`require`);
- :mod:`~retrieval.access.accounts`: accounts and scrypt password hashes (:class:`UserStore`);
- :mod:`~retrieval.access.tokens`: signed, expiring session tokens (:class:`TokenService`);
- :mod:`~retrieval.access.grants`: inspectors' grants and revoked tokens, folded from the locked
  access register (:class:`AccessRegister`).
"""

from retrieval.access.accounts import (
    ScryptParams,
    User,
    UserStore,
    audit_name,
    check_password,
    hash_password,
)
from retrieval.access.grants import (
    ACCESS_PREFIX,
    MAX_GRANT,
    AccessRegister,
    Grant,
    access_dir,
    new_grant,
)
from retrieval.access.roles import (
    DISPOSITION_APPROVERS,
    GRANT_BOUND,
    HOLD_RELEASERS,
    PERMISSIONS,
    RECORD_ACTIONS,
    Action,
    Principal,
    Role,
    require,
)
from retrieval.access.tokens import TOKEN_TTL, TokenService
from retrieval.errors import AccessDeniedError, AuthenticationError, TokenRefusedError

__all__ = [
    "ACCESS_PREFIX",
    "DISPOSITION_APPROVERS",
    "GRANT_BOUND",
    "HOLD_RELEASERS",
    "MAX_GRANT",
    "PERMISSIONS",
    "RECORD_ACTIONS",
    "TOKEN_TTL",
    "AccessDeniedError",
    "AccessRegister",
    "Action",
    "AuthenticationError",
    "Grant",
    "Principal",
    "Role",
    "ScryptParams",
    "TokenRefusedError",
    "TokenService",
    "User",
    "UserStore",
    "access_dir",
    "audit_name",
    "check_password",
    "hash_password",
    "new_grant",
    "require",
]
