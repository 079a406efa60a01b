// diesel table definitions, written by hand to match migrations/{sqlite,postgres}.
// Types are the ones both backends share (Text, Double, Bool, Integer, Date, Timestamp).

diesel::table! {
    zones (code) {
        code -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    zone_communes (zone_code, commune_insee) {
        zone_code -> Text,
        commune_insee -> Text,
    }
}

diesel::table! {
    actors (id) {
        id -> Text,
        name -> Text,
        siret -> Nullable<Text>,
        naf_code -> Text,
        address -> Nullable<Text>,
        commune_insee -> Text,
        departement -> Text,
        region -> Text,
        epci -> Nullable<Text>,
        lat -> Double,
        lng -> Double,
        contact_name -> Nullable<Text>,
        contact_email -> Nullable<Text>,
        contact_phone -> Nullable<Text>,
        share_with_partners -> Bool,
        illustrative -> Bool,
        search_text -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    resources (id) {
        id -> Text,
        actor_id -> Text,
        kind -> Text,
        category -> Text,
        class -> Text,
        label -> Text,
        description -> Nullable<Text>,
        ewc_code -> Nullable<Text>,
        hazardous -> Bool,
        accepted_ewc -> Text,
        quantity_value -> Nullable<Double>,
        quantity_unit -> Nullable<Text>,
        quantity_period -> Nullable<Text>,
        yearly_quantity -> Nullable<Double>,
        base_unit -> Nullable<Text>,
        availability -> Text,
        months -> Integer,
        available_from -> Nullable<Date>,
        available_until -> Nullable<Date>,
        temperature_c -> Nullable<Double>,
        max_distance_km -> Nullable<Double>,
        physical_state -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    synergies (id) {
        id -> Text,
        kind -> Text,
        offer_id -> Nullable<Text>,
        need_id -> Nullable<Text>,
        provider_actor_id -> Nullable<Text>,
        receiver_actor_id -> Nullable<Text>,
        class -> Text,
        ewc_code -> Nullable<Text>,
        latent -> Bool,
        score -> Double,
        distance_km -> Nullable<Double>,
        quantity -> Nullable<Double>,
        base_unit -> Nullable<Text>,
        detail -> Text,
        status -> Text,
        active -> Bool,
        first_detected_at -> Timestamp,
        last_detected_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        status_reason -> Nullable<Text>,
        status_changed_at -> Nullable<Timestamp>,
        realised_quantity -> Nullable<Double>,
        realised_diverted_t -> Nullable<Double>,
        realised_co2e_t -> Nullable<Double>,
        fingerprint -> BigInt,
    }
}

diesel::table! {
    synergy_history (id) {
        id -> Text,
        synergy_id -> Text,
        changed_by -> Text,
        changed_at -> Timestamp,
        from_status -> Text,
        to_status -> Text,
        comment -> Nullable<Text>,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    synergy_notes (id) {
        id -> Text,
        synergy_id -> Text,
        author -> Text,
        created_at -> Timestamp,
        text -> Text,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        territories -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        key_id -> Nullable<Text>,
        key_name -> Text,
        method -> Text,
        route -> Text,
        path -> Text,
        entity_id -> Nullable<Text>,
        status -> Integer,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        key_id -> Text,
        url -> Text,
        events -> Text,
        secret -> Text,
        territories -> Text,
        anonymise -> Bool,
        status -> Text,
        consecutive_failures -> Integer,
        paused_reason -> Nullable<Text>,
        paused_at -> Nullable<Timestamp>,
        next_seq -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Text,
        event_type -> Text,
        created_at -> Timestamp,
        data -> Text,
        communes -> Text,
        subscription_id -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_outbox (id) {
        id -> Text,
        subscription_id -> Text,
        event_id -> Text,
        seq -> BigInt,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
        state -> Text,
        next_attempt_at -> Timestamp,
        attempts -> Integer,
        delivered_at -> Nullable<Timestamp>,
        expired_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        outbox_id -> Text,
        attempted_at -> Timestamp,
        http_status -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> BigInt,
        success -> Bool,
    }
}

diesel::table! {
    change_versions (kind) {
        kind -> Text,
        version -> BigInt,
    }
}

diesel::table! {
    data_changes (version, entity, entity_id) {
        version -> BigInt,
        entity -> Text,
        entity_id -> Text,
    }
}

diesel::table! {
    data_changes_state (id) {
        id -> Integer,
        pruned_through -> BigInt,
        recording -> Bool,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_at_ms -> BigInt,
    }
}

diesel::joinable!(resources -> actors (actor_id));
diesel::joinable!(zone_communes -> zones (zone_code));
diesel::joinable!(synergy_history -> synergies (synergy_id));
diesel::joinable!(synergy_notes -> synergies (synergy_id));
diesel::joinable!(webhook_outbox -> webhook_subscriptions (subscription_id));
diesel::joinable!(webhook_attempts -> webhook_outbox (outbox_id));
diesel::allow_tables_to_appear_in_same_query!(
    zones,
    zone_communes,
    actors,
    resources,
    synergies,
    synergy_history,
    synergy_notes,
    webhook_subscriptions,
    webhook_events,
    webhook_outbox,
    webhook_attempts
);
