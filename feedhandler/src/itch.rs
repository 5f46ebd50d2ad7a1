//! Nasdaq TotalView-ITCH 5.0 decoding by byte views (no copy, no allocation).
//!
//! `decode` checks the type byte and that the transport length equals the type's fixed length;
//! after that no accessor can panic. Unknown types and wrong lengths are errors, which callers
//! count and skip.

use protocol::schema::Symbol;

/// Why one ITCH message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ItchError {
    #[error("empty message")]
    Empty,
    #[error("unknown message type 0x{0:02x}")]
    UnknownType(u8),
    #[error("type {ty:?} must be {want} bytes, got {got}")]
    BadLength { ty: char, want: usize, got: usize },
}

#[inline]
fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn be_u48(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a[2..].copy_from_slice(&b[at..at + 6]);
    u64::from_be_bytes(a)
}
#[inline]
fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}
#[inline]
fn alpha<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// Field readers by ITCH field type; the macro below maps a type name to one of these.
macro_rules! read {
    (u16, $b:expr, $o:expr) => {
        be_u16($b, $o)
    };
    (u32, $b:expr, $o:expr) => {
        be_u32($b, $o)
    };
    (u64, $b:expr, $o:expr) => {
        be_u64($b, $o)
    };
    (p4, $b:expr, $o:expr) => {
        be_u32($b, $o)
    };
    (p8, $b:expr, $o:expr) => {
        be_u64($b, $o)
    };
    (c, $b:expr, $o:expr) => {
        $b[$o]
    };
    (a2, $b:expr, $o:expr) => {
        alpha::<2>($b, $o)
    };
    (a4, $b:expr, $o:expr) => {
        alpha::<4>($b, $o)
    };
    (stock, $b:expr, $o:expr) => {
        Symbol(alpha::<8>($b, $o))
    };
}

macro_rules! ty {
    (u16) => {
        u16
    };
    (u32) => {
        u32
    };
    (u64) => {
        u64
    };
    (p4) => {
        u32
    };
    (p8) => {
        u64
    };
    (c) => {
        u8
    };
    (a2) => {
        [u8; 2]
    };
    (a4) => {
        [u8; 4]
    };
    (stock) => {
        Symbol
    };
}

/// Declares one message view: its type byte, fixed length and body fields (offset from the
/// type byte). Prices are returned raw (`p4`: 4 implied decimals, `p8`: 8).
macro_rules! views {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $len:literal { $($field:ident: $fty:ident @ $off:literal),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name<'a>(&'a [u8]);

            impl<'a> $name<'a> {
                pub const TYPE: u8 = $code;
                pub const LEN: usize = $len;
                pub fn stock_locate(&self) -> u16 { be_u16(self.0, 1) }
                pub fn tracking_number(&self) -> u16 { be_u16(self.0, 3) }
                /// Nanoseconds since midnight, US/Eastern.
                pub fn timestamp(&self) -> u64 { be_u48(self.0, 5) }
                pub fn as_bytes(&self) -> &'a [u8] { self.0 }
                $( pub fn $field(&self) -> ty!($fty) { read!($fty, self.0, $off) } )*
            }
        )*

        /// One decoded ITCH 5.0 message: a typed view over the original bytes. The
        /// discriminant is the type byte, so building one from a checked buffer needs no branch.
        #[derive(Debug, Clone, Copy)]
        #[repr(u8)]
        pub enum Message<'a> {
            $( $name($name<'a>) = $code, )*
        }

        impl<'a> Message<'a> {
            /// The message bytes (type byte first).
            #[inline]
            pub fn as_bytes(&self) -> &'a [u8] {
                match self { $( Message::$name(m) => m.0, )* }
            }
        }

        /// Fixed length per type byte; 0 for unknown types.
        const LENGTHS: [u8; 256] = {
            let mut t = [0u8; 256];
            $( t[$code as usize] = $len; )*
            t
        };

        /// Fixed length of a known type, `None` for an unknown one.
        pub const fn message_len(ty: u8) -> Option<usize> {
            match LENGTHS[ty as usize] { 0 => None, n => Some(n as usize) }
        }

        /// Decodes one message (the bytes after the transport's length prefix): a table
        /// lookup and a length check, then a view.
        #[inline]
        pub fn decode(buf: &[u8]) -> Result<Message<'_>, ItchError> {
            let Some(&ty) = buf.first() else { return Err(ItchError::Empty) };
            let want = LENGTHS[ty as usize] as usize;
            if want == 0 {
                return Err(ItchError::UnknownType(ty));
            }
            if buf.len() != want {
                return Err(ItchError::BadLength { ty: ty as char, want, got: buf.len() });
            }
            Ok(match ty {
                $( $code => Message::$name($name(buf)), )*
                _ => return Err(ItchError::UnknownType(ty)),
            })
        }
    };
}

views! {
    /// `S`
    SystemEvent = b'S', 12 { event_code: c @ 11 }
    /// `R`
    StockDirectory = b'R', 39 {
        stock: stock @ 11, market_category: c @ 19, financial_status: c @ 20,
        round_lot_size: u32 @ 21, round_lots_only: c @ 25, issue_classification: c @ 26,
        issue_sub_type: a2 @ 27, authenticity: c @ 29, short_sale_threshold: c @ 30,
        ipo_flag: c @ 31, luld_ref_price_tier: c @ 32, etp_flag: c @ 33,
        etp_leverage_factor: u32 @ 34, inverse_indicator: c @ 38,
    }
    /// `H`
    StockTradingAction = b'H', 25 { stock: stock @ 11, trading_state: c @ 19, reserved: c @ 20, reason: a4 @ 21 }
    /// `Y`
    RegShoRestriction = b'Y', 20 { stock: stock @ 11, reg_sho_action: c @ 19 }
    /// `L`
    MarketParticipantPosition = b'L', 26 {
        mpid: a4 @ 11, stock: stock @ 15, primary_market_maker: c @ 23,
        market_maker_mode: c @ 24, market_participant_state: c @ 25,
    }
    /// `V`
    MwcbDeclineLevel = b'V', 35 { level1: p8 @ 11, level2: p8 @ 19, level3: p8 @ 27 }
    /// `W`
    MwcbStatus = b'W', 12 { breached_level: c @ 11 }
    /// `K`
    IpoQuotingPeriodUpdate = b'K', 28 {
        stock: stock @ 11, ipo_release_time: u32 @ 19, ipo_release_qualifier: c @ 23, ipo_price: p4 @ 24,
    }
    /// `J`
    LuldAuctionCollar = b'J', 35 {
        stock: stock @ 11, auction_collar_ref_price: p4 @ 19, upper_auction_collar_price: p4 @ 23,
        lower_auction_collar_price: p4 @ 27, auction_collar_extension: u32 @ 31,
    }
    /// `h`
    OperationalHalt = b'h', 21 { stock: stock @ 11, market_code: c @ 19, operational_halt_action: c @ 20 }
    /// `A`
    AddOrder = b'A', 36 { order_ref: u64 @ 11, side: c @ 19, shares: u32 @ 20, stock: stock @ 24, price: p4 @ 32 }
    /// `F`
    AddOrderMpid = b'F', 40 {
        order_ref: u64 @ 11, side: c @ 19, shares: u32 @ 20, stock: stock @ 24, price: p4 @ 32, attribution: a4 @ 36,
    }
    /// `E`
    OrderExecuted = b'E', 31 { order_ref: u64 @ 11, executed_shares: u32 @ 19, match_number: u64 @ 23 }
    /// `C`
    OrderExecutedWithPrice = b'C', 36 {
        order_ref: u64 @ 11, executed_shares: u32 @ 19, match_number: u64 @ 23, printable: c @ 31, execution_price: p4 @ 32,
    }
    /// `X`
    OrderCancel = b'X', 23 { order_ref: u64 @ 11, cancelled_shares: u32 @ 19 }
    /// `D`
    OrderDelete = b'D', 19 { order_ref: u64 @ 11 }
    /// `U`
    OrderReplace = b'U', 35 { orig_order_ref: u64 @ 11, new_order_ref: u64 @ 19, shares: u32 @ 27, price: p4 @ 31 }
    /// `P`
    Trade = b'P', 44 {
        order_ref: u64 @ 11, side: c @ 19, shares: u32 @ 20, stock: stock @ 24, price: p4 @ 32, match_number: u64 @ 36,
    }
    /// `Q`
    CrossTrade = b'Q', 40 { shares: u64 @ 11, stock: stock @ 19, cross_price: p4 @ 27, match_number: u64 @ 31, cross_type: c @ 39 }
    /// `B`
    BrokenTrade = b'B', 19 { match_number: u64 @ 11 }
    /// `I`
    Noii = b'I', 50 {
        paired_shares: u64 @ 11, imbalance_shares: u64 @ 19, imbalance_direction: c @ 27, stock: stock @ 28,
        far_price: p4 @ 36, near_price: p4 @ 40, current_ref_price: p4 @ 44, cross_type: c @ 48,
        price_variation_indicator: c @ 49,
    }
    /// `N`
    RetailInterest = b'N', 20 { stock: stock @ 11, interest_flag: c @ 19 }
    /// `O`
    DlcrPriceDiscovery = b'O', 48 {
        stock: stock @ 11, open_eligibility_status: c @ 19, min_allowable_price: p4 @ 20,
        max_allowable_price: p4 @ 24, near_execution_price: p4 @ 28, near_execution_time: u64 @ 32,
        lower_price_range_collar: p4 @ 40, upper_price_range_collar: p4 @ 44,
    }
}

/// The 23 ITCH 5.0 type letters, in the spec's order.
pub const TYPES: [u8; 23] = *b"SRHYLVWKJhAFECXDUPQBINO";

impl Message<'_> {
    /// The type byte.
    #[inline]
    pub fn type_byte(&self) -> u8 {
        self.as_bytes()[0]
    }

    #[inline]
    pub fn stock_locate(&self) -> u16 {
        be_u16(self.as_bytes(), 1)
    }

    /// Nanoseconds since midnight, US/Eastern.
    #[inline]
    pub fn timestamp(&self) -> u64 {
        be_u48(self.as_bytes(), 5)
    }

    /// The instrument symbol carried by this message, for the types that carry one.
    pub fn stock(&self) -> Option<Symbol> {
        Some(match self {
            Message::StockDirectory(m) => m.stock(),
            Message::StockTradingAction(m) => m.stock(),
            Message::RegShoRestriction(m) => m.stock(),
            Message::MarketParticipantPosition(m) => m.stock(),
            Message::IpoQuotingPeriodUpdate(m) => m.stock(),
            Message::LuldAuctionCollar(m) => m.stock(),
            Message::OperationalHalt(m) => m.stock(),
            Message::AddOrder(m) => m.stock(),
            Message::AddOrderMpid(m) => m.stock(),
            Message::Trade(m) => m.stock(),
            Message::CrossTrade(m) => m.stock(),
            Message::Noii(m) => m.stock(),
            Message::RetailInterest(m) => m.stock(),
            Message::DlcrPriceDiscovery(m) => m.stock(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_length_and_rejects_others() {
        for &t in &TYPES {
            let len = message_len(t).unwrap();
            let mut buf = vec![0u8; len + 1];
            buf[0] = t;
            assert!(decode(&buf[..len]).is_ok());
            assert_eq!(decode(&buf[..len]).unwrap().type_byte(), t);
            assert!(matches!(decode(&buf), Err(ItchError::BadLength { .. })));
            assert!(matches!(
                decode(&buf[..len - 1]),
                Err(ItchError::BadLength { .. })
            ));
        }
        assert_eq!(decode(b"Z123").err(), Some(ItchError::UnknownType(b'Z')));
        assert_eq!(decode(b"").err(), Some(ItchError::Empty));
    }
}
