"""The scanner page's words for its JavaScript, from the one gettext catalogue.

The page renders them as a JSON block (`page.html`), so the catalogue in
couponsvc/translations holds every word the page shows, the server's and the script's.
`%(name)s` placeholders are filled in by the script. A refusal's heading is keyed by the
API's reason code (`domain_error.CODES`), or by a code only the device gives
(`till.js` DEVICE_REASONS); the words of a refusal the server gave come from the server,
in the page's language.
"""

from __future__ import annotations

from flask_babel import get_translations
from flask_babel import gettext as _

from ..domain_error import Sentence, say_n


def _plural(sentence: Sentence) -> dict:
    """Both forms of a plural, unfilled: the script fills `%(num)s` and takes `one` for 1."""
    catalogue = get_translations()
    return {"one": catalogue.ngettext(sentence.msgid, sentence.plural, 1),
            "other": catalogue.ngettext(sentence.msgid, sentence.plural, 2)}


def page_strings() -> dict:
    return {
        "reason": {
            "coupon_already_redeemed": _("Already used"),
            "coupon_pending": _("Deal not tipped yet"),
            "coupon_voided": _("Voided"),
            "coupon_expired": _("Expired"),
            "coupon_not_yet_valid": _("Not valid yet"),
            "store_not_allowed": _("Not valid at this store"),
            "insufficient_uses": _("Not enough uses left"),
            "coupon_not_found": _("No such coupon"),
            "invalid_code": _("Mistyped code"),
            "invalid_qr": _("Not a valid coupon QR"),
            "rate_limited": _("Too many failed look-ups"),
            "unauthenticated": _("The scanner key no longer works"),
            "forbidden": _("This key may not redeem"),
            "redemption_already_reversed": _("Already reversed"),
            "reversal_window_closed": _("Too late to reverse"),
            "offline_code": _("Offline: typed codes cannot be checked"),
            "offline_unverifiable": _("Offline: this device cannot check QR codes yet"),
            "network_error": _("No answer from the server"),
            "other": _("Refused"),
        },
        "device_detail": {
            "coupon_already_redeemed": _("This device already accepted this coupon."),
            "coupon_voided": _("It is on the list of voided and refunded coupons."),
            "coupon_expired": _("Its validity has ended."),
            "coupon_not_found": _("It is not a deal of this merchant, or a deal newer than this "
                                  "device's list."),
            "coupon_pending": _("The deal has not reached its group size yet."),
            "coupon_not_yet_valid": _("The deal's coupons cannot be used yet."),
            "store_not_allowed": _("The deal is not honoured at this store."),
            "insufficient_uses": _("Fewer uses are left than asked."),
            "offline_code": _("Scan the customer's QR code instead, or wait for the network."),
            "offline_unverifiable": _("Connect once so the device can load the keys."),
            "network_error": _("Check the network and try again."),
            "qr_signature": _("Its signature does not verify: forged or altered."),
            "qr_format": _("This is not a coupon QR code."),
            "code_length": _("A coupon code has 12 characters."),
            "code_character": _("The code has a character that no coupon code uses."),
            "code_check": _("The code does not add up: a character is mistyped."),
        },
        "redeemed": _("Redeemed"),
        "queued": _("Accepted offline"),
        "queued_detail": _("Saved on this device; it is uploaded when the network is back."),
        "reversed": _("Reversed"),
        "uses_left": _("%(left)s of %(total)s uses left"),
        "uses_taken": _("%(uses)s uses taken"),
        "reverse": _("Reverse"),
        "reverse_left": _("Reverse (%(time)s left)"),
        "reverse_reason": _("reversed at the till"),
        "ask_uses": _("How many uses?"),
        "uses_at_most": _("At most %(max)s"),
        "ready": _("Ready to scan"),
        "redeem": _("Redeem"),
        "cancel": _("Cancel"),
        "fewer": _("One fewer"),
        "more": _("One more"),
        "online": _("Online"),
        "offline": _("Offline"),
        "offline_note": _("Offline: scanned QR codes are checked on this device and uploaded "
                          "later; typed codes cannot be checked."),
        "waiting": _plural(_N_WAITING),
        "synced": _("Keys and revocations updated %(time)s"),
        "camera_starting": _("Starting the camera…"),
        "camera_ready": _("Hold the coupon's QR code in front of the camera"),
        "camera_failed": _("The camera is not available: type the code instead."),
        "checking": _("Checking…"),
        "key_checking": _("Checking the key…"),
        "key_refused": _("This key was not accepted."),
        "key_platform": _("This is not a scanner key of a merchant."),
        "key_offline": _("No network: the key cannot be checked now."),
        "upload": {
            "accepted": _("Uploaded: redeemed"),
            "duplicate": _("Uploaded before"),
            "conflict": _("Conflict: used elsewhere first"),
            "rejected": _("Refused on upload"),
            "waiting": _("Waiting to upload"),
        },
        "conflict_banner": _plural(_N_REFUSED),
        "sign_out_waiting": _plural(_N_SIGN_OUT),
        "any_store": _("Choose the store this device is at"),
    }


# Marked for the catalogue by `say_n`, which keeps both forms (`Sentence.msgid`, `.plural`).
_N_WAITING = say_n("%(num)s waiting to upload", "%(num)s waiting to upload", 2)
_N_REFUSED = say_n("%(num)s offline scan was refused on upload: check it below.",
                   "%(num)s offline scans were refused on upload: check them below.", 2)
_N_SIGN_OUT = say_n("%(num)s scan is still waiting to upload. It stays on this device. Sign out?",
                    "%(num)s scans are still waiting to upload. They stay on this device. Sign out?", 2)
