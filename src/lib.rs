//! tickstream: a live price feed over Server-Sent Events.
