package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

// checkKEKs checks, for every organisation and key-encryption key version
// that wraps records in the database, that the key is there (a file under
// <data>/keys/kek or HEALTHGW_KEK_<ORG>_V<N>) and is the key those
// records were wrapped under: it unwraps one of their data keys. The
// database's wrapped data keys are its record of the KEKs it belongs to;
// without this check a lost v1 file would be silently re-created as a new
// v1 by the first upload, and every earlier record of the organisation
// lost. It only reads.
func checkKEKs(ctx context.Context, db *gorm.DB, dsn, dataDir string, keys records.KeyProvider) error {
	uses, err := recordstore.KeyUses(ctx, db)
	if err != nil {
		return err
	}
	for _, u := range uses {
		err := records.CheckKEK(ctx, keys, u.Holder, u.Sample)
		if err == nil {
			continue
		}
		v := u.Sample.KeyVersion
		name := fmt.Sprintf("key-encryption key of %s v%d", u.Holder, v)
		path := filepath.Join(kekDir(dataDir), u.Holder, "v"+strconv.Itoa(v)+".key")
		kerr := &KeySetError{Key: name, Path: path, Database: dbDisplayName(dsn)}
		switch {
		case errors.Is(err, records.ErrNoKey):
			kerr.Reason = fmt.Sprintf("missing (nor is %s set): %d records of %s in the database %s are wrapped under it; restore the key from backup",
				records.EnvKeyName(u.Holder, v), u.Count, u.Holder, kerr.Database)
		case errors.Is(err, records.ErrDecrypt):
			kerr.Reason = fmt.Sprintf("is not the key the %d records of %s in the database %s are wrapped under (record %s does not unwrap); restore the key they were written with",
				u.Count, u.Holder, kerr.Database, u.Sample.ID)
		default:
			kerr.Reason = fmt.Sprintf("unusable: %v", err)
		}
		return kerr
	}
	return nil
}
