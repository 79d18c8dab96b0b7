//! The macro that turns a method's field list into a struct with its decoder and encoder.
//!
//! Each class file lists its methods the way the spec's XML does: name, class and
//! method ids, and typed fields. Field kinds are the spec's domains: `octet`, `short`,
//! `long`, `longlong`, `bit`, `shortstr`, `longstr`, `table`.

macro_rules! field_type {
    (octet) => {
        u8
    };
    (short) => {
        u16
    };
    (long) => {
        u32
    };
    (longlong) => {
        u64
    };
    (bit) => {
        bool
    };
    (shortstr) => {
        $crate::ShortStr
    };
    (longstr) => {
        bytes::Bytes
    };
    (table) => {
        $crate::FieldTable
    };
}

macro_rules! read_field {
    ($r:ident, octet) => {
        $r.u8()?
    };
    ($r:ident, short) => {
        $r.u16()?
    };
    ($r:ident, long) => {
        $r.u32()?
    };
    ($r:ident, longlong) => {
        $r.u64()?
    };
    ($r:ident, bit) => {
        $r.bit()?
    };
    ($r:ident, shortstr) => {
        $r.short_str()?
    };
    ($r:ident, longstr) => {
        $r.long_str()?
    };
    ($r:ident, table) => {
        $r.table()?
    };
}

macro_rules! write_field {
    ($w:ident, octet, $v:expr) => {
        $w.u8(*$v)
    };
    ($w:ident, short, $v:expr) => {
        $w.u16(*$v)
    };
    ($w:ident, long, $v:expr) => {
        $w.u32(*$v)
    };
    ($w:ident, longlong, $v:expr) => {
        $w.u64(*$v)
    };
    ($w:ident, bit, $v:expr) => {
        $w.bit(*$v)
    };
    ($w:ident, shortstr, $v:expr) => {
        $w.short_str($v)
    };
    ($w:ident, longstr, $v:expr) => {
        $w.long_str($v)
    };
    ($w:ident, table, $v:expr) => {
        $w.table($v)
    };
}

macro_rules! methods {
    ($(
        $(#[$meta:meta])*
        $name:ident = ($class:literal, $method:literal, $label:literal) {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: field_type!($kind), )*
        }

        impl $name {
            /// The class id on the wire.
            pub const CLASS_ID: u16 = $class;
            /// The method id on the wire.
            pub const METHOD_ID: u16 = $method;
            /// The method's name as the spec writes it.
            pub const NAME: &'static str = $label;

            #[allow(unused_variables)]
            pub(crate) fn decode(
                r: &mut $crate::wire::Reader<'_>,
            ) -> Result<Self, $crate::DecodeError> {
                Ok($name { $( $field: read_field!(r, $kind), )* })
            }

            #[allow(unused_variables)]
            pub(crate) fn encode(&self, w: &mut $crate::wire::Writer<'_>) {
                $( write_field!(w, $kind, &self.$field); )*
            }
        }
    )*};
}
