"""Citizens' bookings over HTTP. A web citizen sees and cancels the bookings its own chat made;
from another channel (another browser, the phone after booking in WeChat) a booking is found with
its code plus the last four digits of the phone number given when booking. Nobody else's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from assistant import accounts
from assistant import bookings as bk
from assistant.db import Booking, sessions
from settings import Settings
from web.deps import CITIZEN_COOKIE, CitizenDep, SettingsDep, rate_limit

router = APIRouter(prefix="/api/bookings", tags=["citizens"])
NOT_FOUND = "没有找到该预约，请核对预约号和预约时填写的手机号后四位"
Last4 = Annotated[str | None, Query(pattern=r"^\d{4}$", description="预约手机号后四位")]


class BookingOut(BaseModel):
    code: str
    matter: str | None
    centre: str
    centre_name: str
    date: str
    slot: str
    status: str
    name: str  # masked: 张* / 欧阳**
    phone: str  # masked: 138****8000


def booking_out(b: Booking) -> BookingOut:
    return BookingOut(code=b.code, matter=b.matter, centre=b.centre, centre_name=bk.CENTRES.get(b.centre, b.centre),
                      date=b.date.isoformat(), slot=b.slot, status=b.status,
                      name=bk.mask_name(b.name), phone=bk.mask_phone(b.phone))


def book(settings: Settings) -> bk.BookingBook:
    return bk.BookingBook(settings.database_url, settings.slot_capacity, settings.walk_in_share,
                          settings.booking_days, tuple(settings.closed_dates))


def web_sender(request: Request, settings: Settings) -> str | None:
    """The web citizen behind the session cookie, if any (never a body or query parameter)."""
    with sessions(settings.database_url)() as s:
        citizen = accounts.citizen_for_token(s, request.cookies.get(CITIZEN_COOKIE))
    return citizen.sender if citizen else None


@router.get("", response_model=list[BookingOut], summary="My bookings (web citizen session)")
def my_bookings(citizen: CitizenDep, settings: SettingsDep):
    return [booking_out(b) for b in book(settings).active_for(citizen.sender)]


@router.get("/{code}", response_model=BookingOut, summary="One booking: mine, or by its code + phone's last 4 digits",
            dependencies=[Depends(rate_limit("booking", "booking_lookup_per_minute"))],
            responses={404: {"description": "no such booking for this caller"}})
def booking(code: Annotated[str, Path(max_length=16)], request: Request, settings: SettingsDep,
            phone_last4: Last4 = None):
    b = book(settings).find(code, sender=web_sender(request, settings), phone_last4=phone_last4)
    if b is None:
        raise HTTPException(404, NOT_FOUND)  # the same answer for "no such code" and "wrong digits"
    return booking_out(b)


class CancelRequest(BaseModel):
    phone_last4: str | None = Field(default=None, pattern=r"^\d{4}$")


@router.post("/{code}/cancel", response_model=BookingOut, summary="Cancel: my booking, or by code + phone's last 4",
             dependencies=[Depends(rate_limit("booking", "booking_lookup_per_minute"))],
             responses={404: {"description": "no such active booking for this caller"}})
def cancel(code: Annotated[str, Path(max_length=16)], req: CancelRequest, request: Request, settings: SettingsDep):
    b = book(settings).cancel(code, web_sender(request, settings), phone_last4=req.phone_last4)
    if b is None:
        raise HTTPException(404, NOT_FOUND)
    return booking_out(b)
