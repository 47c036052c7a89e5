from __future__ import annotations

from banhammer.energy.v1 import user_pb2, user_pb2_grpc
from services.runtime import InvalidArgument, PermissionDenied

from . import convert
from .auth import Auth


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, users, auth: Auth) -> None:
        self.users, self.auth = users, auth

    async def RegisterUser(self, request, context):
        role = "admin" if request.role == user_pb2.ROLE_ADMIN else "user"
        if request.role not in (user_pb2.ROLE_UNSPECIFIED, user_pb2.ROLE_USER, user_pb2.ROLE_ADMIN):
            raise InvalidArgument.field("role", "unknown role")
        caller = await self.auth.caller(context) if role == "admin" else None
        user = await self.users.register(request.username, request.email, request.password, role,
                                         caller_is_admin=caller is not None and caller.is_admin)
        return user_pb2.RegisterUserResponse(user=convert.user(user))

    async def Authenticate(self, request, context):
        user, session = await self.users.authenticate(request.username, request.password)
        return user_pb2.AuthenticateResponse(user=convert.user(user), session_token=session.token,
                                             session_id=session.session_id, expire_time=convert.ts(session.expire_time))

    async def GetUser(self, request, context):
        caller = await self.auth.user(context)
        if not caller.is_admin and caller.user_id != request.user_id:
            raise PermissionDenied("only admins can read other users")
        return user_pb2.GetUserResponse(user=convert.user(await self.users.get(request.user_id)))

    async def ListUsers(self, request, context):
        await self.auth.admin(context)
        if request.role not in (0, *convert.PB_TO_ROLE):
            raise InvalidArgument.field("role", "unknown role")
        page = await self.users.list(convert.PB_TO_ROLE.get(request.role), request.page_size, request.page_token)
        return user_pb2.ListUsersResponse(users=[convert.user(u) for u in page.items], next_page_token=page.next_token)

    async def SetUserRole(self, request, context):
        await self.auth.admin(context)
        if request.role not in convert.PB_TO_ROLE:
            raise InvalidArgument.field("role", "must be ROLE_USER or ROLE_ADMIN")
        user = await self.users.set_role(request.user_id, convert.PB_TO_ROLE[request.role])
        return user_pb2.SetUserRoleResponse(user=convert.user(user))
