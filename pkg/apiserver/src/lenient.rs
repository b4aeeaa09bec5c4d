//! Forgiving typed views of stored objects: `Lenient<T>` reads a field as `T` when its JSON
//! has T's shape (object, array, string or bool) and as absent otherwise, so a cache that needs
//! a few fields of every watched object decodes only those instead of a whole `Value`, and a
//! field of an unexpected type reads as missing, as `Value` lookups (`v["a"].as_str()`) do.

use serde::de::value::{
    BoolDeserializer, MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer,
};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A field read as `T` when its JSON has T's shape, else `None` (also for null or absence,
/// with `#[serde(default)]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<T> Lenient<T> {
    /// The value, if it had the expected shape.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl Lenient<String> {
    /// The string, if present.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<T> Lenient<Vec<T>> {
    /// The items (none when absent or not an array).
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.as_deref().unwrap_or(&[]).iter()
    }
}

/// The JSON shape a [`Lenient`] field expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    Array,
    String,
    Bool,
}

/// A type a [`Lenient`] field can hold: what JSON shape it is read from.
pub trait Shaped {
    const SHAPE: Shape;
}

impl Shaped for String {
    const SHAPE: Shape = Shape::String;
}

impl Shaped for bool {
    const SHAPE: Shape = Shape::Bool;
}

impl<T> Shaped for Vec<T> {
    const SHAPE: Shape = Shape::Array;
}

impl<'de, T: Deserialize<'de> + Shaped> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor(PhantomData))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Shaped> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if T::SHAPE == Shape::Object {
            return T::deserialize(MapAccessDeserializer::new(map)).map(|t| Lenient(Some(t)));
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if T::SHAPE == Shape::Array {
            return T::deserialize(SeqAccessDeserializer::new(seq)).map(|t| Lenient(Some(t)));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if T::SHAPE != Shape::String {
            return Ok(Lenient(None));
        }
        T::deserialize(StrDeserializer::<E>::new(v)).map(|t| Lenient(Some(t)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if T::SHAPE != Shape::Bool {
            return Ok(Lenient(None));
        }
        T::deserialize(BoolDeserializer::<E>::new(v)).map(|t| Lenient(Some(t)))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}
