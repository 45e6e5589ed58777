"""Operations: the nightly schedule, lake maintenance (OPTIMIZE/VACUUM), parallel re-processing."""
