//! CANCEL (0x09, client → server): cancel the outstanding request whose ID the CANCEL frame's
//! header carries (spec §3.7). The body is empty. CANCEL itself is never answered: the cancelled
//! request still gets exactly one response — ERROR CANCELLED if it had not started, its normal
//! response otherwise.

use serde::{Deserialize, Serialize};

/// CANCEL: empty body; the header's request ID names the request to cancel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Cancel {}

super::plain_body!(Cancel);
