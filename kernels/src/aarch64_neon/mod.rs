//! NEON microkernels (placeholder until the NEON kernel lands).
