import './base.css';
import './cellbadges.css';
import './models.css';
